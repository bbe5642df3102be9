/* vpndoctor.capture._scan: the capture fast path's record walk in C.
 *
 * The same three loops as the pure-Python ones in fastpath.py (`FastPath.pcap_records`,
 * `FastPath.pcapng_blocks`) and worker.py (the worker's `_walk_deferring`), with the same decisions in the
 * same order: a packet is settled here (counted per kind, per ESP SPI or per TCP 443 direction, into the
 * Python dictionaries and objects the analysis owns) or left to the exact path. In Python the walk costs
 * about 0.7 us a record, which caps the reader near 300 k packets/s.
 *
 * Building a Python key and looking it up for every packet would cost most of that again, so a `Tables`
 * object keeps a small hash table of the keys already found in the analysis's dictionaries (raw address and
 * SPI or port bytes -> the dictionary's key, or the TCP direction object) and the counts not yet written
 * back, which `Tables.flush()` writes back (the analysis calls it once it has read the file). This is sound
 * because those dictionaries only grow (a key, once there, stays and keeps its direction object; a direction
 * once `done` stays done), and because everything else done to these counts before the end is an addition
 * (capture/tcp.py, capture/conversations.py).
 *
 * Hand-written because no library walks pcap records into these tables: libpcap and dpkt hand out one
 * packet at a time (a Python object each), which is the cost this module exists to avoid. Every read is
 * bounds-checked against the buffer; fields are read little-endian byte by byte, whatever the host's order.
 * Keys are built exactly as `tcp.flow_key` builds them: (source, destination, ports or SPI) as little-endian
 * ints, with a trailing 6 for IPv6.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LE_ETHERTYPE_IPV4 0x0008u
#define LE_ETHERTYPE_IPV6 0xDD86u
#define LE_FRAG_MASK 0xFF3Fu
#define LE_PORT_443 0xBB01u
#define LE_PORT_500 0xF401u
#define LE_PORT_4500 0x9411u
#define LE_SYN_FIN_RST 0x0700u
#define MIN_IP_BYTES 40
#define IPV6_READ 54 /* the IPv6 header and 14 bytes of transport, as fastpath._IPV6 reads */
#define TABLES_MAX_SLOTS (1u << 20)

enum { N_ESP, N_ESP_UDP, N_TCP443, N_TCP, N_UDP, N_OTHER, N_KINDS };
enum { TAG_TCP = 1, TAG_V6 = 2 };

static PyObject *s_done, *s_packets, *s_bytes, *s_append, *zero;

static inline uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* -- keys ------------------------------------------------------------------------------------------------ */

/* The raw key: addresses as captured (IPv4 in the first 4 bytes, the rest zero), the 4 bytes after the IP
 * header (ports, or the SPI), and which table and IP version. 40 bytes, no padding. */
typedef struct {
    uint8_t src[16];
    uint8_t dst[16];
    uint32_t l4;
    uint32_t tag;
} Key;

static inline void key_v4(Key *k, const uint8_t *ip, uint32_t l4, uint32_t tag) {
    memset(k, 0, sizeof *k);
    memcpy(k->src, ip + 12, 4);
    memcpy(k->dst, ip + 16, 4);
    k->l4 = l4;
    k->tag = tag;
}

static inline void key_v6(Key *k, const uint8_t *ip6, uint32_t l4, uint32_t tag) {
    memcpy(k->src, ip6 + 8, 16);
    memcpy(k->dst, ip6 + 24, 16);
    k->l4 = l4;
    k->tag = tag | TAG_V6;
}

static PyObject *u128(const uint8_t *p) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(p, 16, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray(p, 16, 1, 0);
#endif
}

/* The analysis's key for it: (source, destination, l4) or (source, destination, l4, 6). */
static PyObject *py_key(const Key *k) {
    int v6 = k->tag & TAG_V6;
    PyObject *items[4] = {
        v6 ? u128(k->src) : PyLong_FromUnsignedLong(le32(k->src)),
        v6 ? u128(k->dst) : PyLong_FromUnsignedLong(le32(k->dst)),
        PyLong_FromUnsignedLong(k->l4),
        v6 ? PyLong_FromLong(6) : NULL,
    };
    Py_ssize_t n = v6 ? 4 : 3;
    PyObject *key = NULL;
    int ok = 1;
    for (Py_ssize_t i = 0; i < n; i++)
        ok &= items[i] != NULL;
    if (ok && (key = PyTuple_New(n))) {
        for (Py_ssize_t i = 0; i < n; i++)
            PyTuple_SET_ITEM(key, i, items[i]);
        return key;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

/* -- Tables: the analysis's dictionaries, and the keys found in them so far --------------------------------- */

typedef struct {
    Key key;
    PyObject *obj;     /* the dictionary's key (ESP) or the direction / [seen, packets, bytes] list (TCP) */
    long long packets; /* not yet written back */
    long long bytes;
    int used;
    int dirty;
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *esp; /* key -> packets */
    PyObject *tcp; /* key -> Direction (this process) or [seen, packets, bytes] (a worker) */
    int worker;
    Slot *slots;
    size_t mask; /* slots - 1, a power of two less one */
    size_t count;
    size_t *dirty; /* indices of slots with counts to write back */
    size_t n_dirty;
    Py_ssize_t settled[N_KINDS]; /* packets settled per kind since the last flush (this process's calls) */
} Tables;

static PyTypeObject TablesType;

static inline size_t key_hash(const Key *k) {
    uint64_t w[5], h = 0x9E3779B97F4A7C15ull;
    memcpy(w, k, sizeof w);
    for (int i = 0; i < 5; i++) {
        h ^= w[i];
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return (size_t)h;
}

static Slot *tables_find(Tables *t, const Key *k) {
    size_t i = key_hash(k) & t->mask;
    for (;;) {
        Slot *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (!memcmp(&s->key, k, sizeof *k))
            return s;
        i = (i + 1) & t->mask;
    }
}

static inline void mark(Tables *t, Slot *s) {
    if (!s->dirty) {
        s->dirty = 1;
        t->dirty[t->n_dirty++] = (size_t)(s - t->slots);
    }
}

/* A packet of a key in the table: counted in its slot until the next flush. */
static inline int hit(Tables *t, Slot *s, long long bytes) {
    s->packets++;
    s->bytes += bytes;
    mark(t, s);
    return 1;
}

static int add_attr(PyObject *obj, PyObject *name, long long n) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v)
        return -1;
    PyObject *delta = PyLong_FromLongLong(n);
    PyObject *sum = delta ? PyNumber_Add(v, delta) : NULL;
    Py_DECREF(v);
    Py_XDECREF(delta);
    if (!sum)
        return -1;
    int rc = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return rc;
}

static int list_add(PyObject *list, Py_ssize_t i, long long n) {
    if (!PyList_Check(list) || PyList_GET_SIZE(list) != 3) {
        PyErr_SetString(PyExc_TypeError, "worker TCP entries are [seen, packets, bytes]");
        return -1;
    }
    PyObject *v = PyList_GET_ITEM(list, i); /* borrowed */
    PyObject *delta = PyLong_FromLongLong(n);
    PyObject *sum = delta ? PyNumber_Add(v, delta) : NULL;
    Py_XDECREF(delta);
    if (!sum)
        return -1;
    PyList_SET_ITEM(list, i, sum);
    Py_DECREF(v);
    return 0;
}

static int dict_add(PyObject *dict, PyObject *key, long long n) {
    PyObject *v = PyDict_GetItemWithError(dict, key); /* borrowed */
    if (!v) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "a counted key left the table");
        return -1;
    }
    PyObject *delta = PyLong_FromLongLong(n);
    PyObject *sum = delta ? PyNumber_Add(v, delta) : NULL;
    Py_XDECREF(delta);
    int rc = sum ? PyDict_SetItem(dict, key, sum) : -1;
    Py_XDECREF(sum);
    return rc;
}

/* Write the pending counts back into the dictionaries and objects; -1 on error (the rest are dropped). */
static int tables_flush(Tables *t) {
    int rc = 0;
    for (size_t j = 0; j < t->n_dirty; j++) {
        Slot *s = &t->slots[t->dirty[j]];
        long long packets = s->packets, bytes = s->bytes;
        s->packets = s->bytes = 0;
        s->dirty = 0;
        if (rc < 0)
            continue;
        if (!(s->key.tag & TAG_TCP))
            rc = dict_add(t->esp, s->obj, packets);
        else if (t->worker)
            rc = list_add(s->obj, 1, packets) < 0 || (bytes && list_add(s->obj, 2, bytes) < 0) ? -1 : 0;
        else
            rc = add_attr(s->obj, s_packets, packets) < 0 || (bytes && add_attr(s->obj, s_bytes, bytes) < 0) ? -1 : 0;
    }
    t->n_dirty = 0;
    return rc;
}

/* Remember key -> obj (a new reference is taken) with these pending counts. Counts in the slot are written
 * back by the next flush; if there is no room, they are written back at once. */
static int tables_insert(Tables *t, const Key *k, PyObject *obj, long long packets, long long bytes) {
    if ((t->count + 1) * 2 > t->mask + 1) {
        size_t size = (t->mask + 1) * 2;
        if (size > TABLES_MAX_SLOTS || tables_flush(t) < 0) {
            if (PyErr_Occurred())
                return -1;
            goto direct; /* full: this key is looked up in the dictionary every time */
        }
        Slot *slots = PyMem_Calloc(size, sizeof(Slot));
        size_t *dirty = PyMem_Calloc(size, sizeof(size_t));
        if (!slots || !dirty) {
            PyMem_Free(slots);
            PyMem_Free(dirty);
            goto direct;
        }
        for (size_t i = 0; i <= t->mask; i++) {
            if (!t->slots[i].used)
                continue;
            size_t at = key_hash(&t->slots[i].key) & (size - 1);
            while (slots[at].used)
                at = (at + 1) & (size - 1);
            slots[at] = t->slots[i];
        }
        PyMem_Free(t->slots);
        PyMem_Free(t->dirty);
        t->slots = slots;
        t->dirty = dirty;
        t->mask = size - 1;
    }
    size_t i = key_hash(k) & t->mask;
    while (t->slots[i].used)
        i = (i + 1) & t->mask;
    Slot *s = &t->slots[i];
    s->key = *k;
    s->obj = Py_NewRef(obj);
    s->used = 1;
    s->packets = packets;
    s->bytes = bytes;
    t->count++;
    mark(t, s);
    return 0;
direct:
    if (!(k->tag & TAG_TCP))
        return dict_add(t->esp, obj, packets);
    if (t->worker)
        return list_add(obj, 1, packets) < 0 || (bytes && list_add(obj, 2, bytes) < 0) ? -1 : 0;
    return add_attr(obj, s_packets, packets) < 0 || (bytes && add_attr(obj, s_bytes, bytes) < 0) ? -1 : 0;
}

static PyObject *tables_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *esp, *tcp;
    int worker = 0;
    static char *names[] = {"esp", "tcp", "worker", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!|p", names, &PyDict_Type, &esp, &PyDict_Type, &tcp, &worker))
        return NULL;
    Tables *t = (Tables *)type->tp_alloc(type, 0);
    if (!t)
        return NULL;
    t->slots = PyMem_Calloc(1024, sizeof(Slot));
    t->dirty = PyMem_Calloc(1024, sizeof(size_t));
    if (!t->slots || !t->dirty) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    t->mask = 1023;
    t->esp = Py_NewRef(esp);
    t->tcp = Py_NewRef(tcp);
    t->worker = worker;
    return (PyObject *)t;
}

static void tables_dealloc(Tables *t) {
    if (t->slots)
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].used)
                Py_DECREF(t->slots[i].obj);
    PyMem_Free(t->slots);
    PyMem_Free(t->dirty);
    Py_XDECREF(t->esp);
    Py_XDECREF(t->tcp);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* -- counting --------------------------------------------------------------------------------------------- */

/* An ESP packet of a known SPI is counted (1); an unknown one is left to the exact path (0); -1 error. A
 * worker (new_keys > 0) also adds an unknown key to its table, while it holds fewer than new_keys, so that
 * the key's later packets are counted: its first is deferred. */
static int esp_count(Tables *t, const Key *k, Py_ssize_t new_keys) {
    Slot *s = tables_find(t, k);
    if (s)
        return hit(t, s, 0);
    PyObject *key = py_key(k);
    if (!key)
        return -1;
    int rc = PyDict_Contains(t->esp, key);
    if (rc == 1)
        rc = tables_insert(t, k, key, 1, 0) < 0 ? -1 : 1;
    else if (rc == 0 && PyDict_GET_SIZE(t->esp) < new_keys && PyDict_SetItem(t->esp, key, zero) < 0)
        rc = -1;
    Py_DECREF(key);
    return rc;
}

/* A TCP 443 segment of a direction whose first message was read: counted (1), left (0), error (-1). */
static int tcp_count(Tables *t, const Key *k, uint32_t tcpw, long payload) {
    if (tcpw & LE_SYN_FIN_RST || (tcpw & 0xF0) < 0x50)
        return 0;
    long long nbytes = payload > 0 ? payload : 0;
    Slot *s = tables_find(t, k);
    if (s)
        return hit(t, s, nbytes);
    PyObject *key = py_key(k);
    if (!key)
        return -1;
    PyObject *d = PyDict_GetItemWithError(t->tcp, key); /* borrowed */
    Py_DECREF(key);
    if (!d)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *done = PyObject_GetAttr(d, s_done);
    if (!done)
        return -1;
    int ok = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (ok <= 0)
        return ok;
    return tables_insert(t, k, d, 1, nbytes) < 0 ? -1 : 1;
}

/* -- what a packet is: written once for this process and the worker -------------------------------------- */

enum { A_COUNTED, A_LEAVE, A_ESP, A_TCP };

typedef struct {
    int kind;      /* for A_COUNTED and A_ESP: the counter (N_ESP, N_ESP_UDP, N_TCP, ...) */
    Key key;       /* for A_ESP and A_TCP */
    uint32_t tcpw; /* for A_TCP: TCP bytes 12-13 (data offset and flags), little-endian */
    long payload;  /* for A_TCP: TCP payload bytes the IP header declares */
    long captured; /* for A_TCP: TCP payload bytes captured */
} Packet;

/* The transport header at l4p of an IP packet (ip: its IP header; v6: which version), with `declared` bytes
 * of transport as its IP header says and `captured` of them in the capture (at least 14 readable). */
static inline int classify_l4(const uint8_t *ip, int v6, uint32_t proto, const uint8_t *l4p, long declared,
                              long captured, Packet *pk) {
    uint32_t l4 = le32(l4p);
    long room = declared < captured ? declared : captured;
    if (proto == 6) {
        if ((l4 & 0xFFFF) != LE_PORT_443 && l4 >> 16 != LE_PORT_443) {
            pk->kind = N_TCP;
            return A_COUNTED;
        }
        pk->tcpw = le16(l4p + 12);
        long doff = (long)((pk->tcpw & 0xF0) >> 2);
        pk->payload = declared - doff;
        pk->captured = room - doff;
        pk->kind = N_TCP443;
    } else if (proto == 17) {
        uint32_t sport = l4 & 0xFFFF, dport = l4 >> 16;
        if (sport == LE_PORT_500 || dport == LE_PORT_500)
            return A_LEAVE;
        if (sport != LE_PORT_4500 && dport != LE_PORT_4500) {
            pk->kind = N_UDP;
            return A_COUNTED;
        }
        uint32_t ulen = le16(l4p + 4), spi = le32(l4p + 8);
        long udp_len = (long)((ulen & 0xFF) << 8 | ulen >> 8);
        if (!spi || udp_len < 16 || udp_len > room)
            return A_LEAVE;
        l4 = spi;
        pk->kind = N_ESP_UDP;
    } else if (proto == 50) {
        pk->kind = N_ESP;
    } else {
        pk->kind = N_OTHER;
        return A_COUNTED;
    }
    uint32_t tag = proto == 6 ? TAG_TCP : 0;
    if (v6)
        key_v6(&pk->key, ip, l4, tag);
    else
        key_v4(&pk->key, ip, l4, tag);
    return proto == 6 ? A_TCP : A_ESP;
}

/* The IPv4 packet at ip (room_captured bytes of it captured, at least MIN_IP_BYTES readable, its header
 * already checked: version 4, IHL 5, not a fragment, total length >= 40). */
static inline int classify_v4(const uint8_t *ip, long room_captured, Packet *pk) {
    long total = (long)ip[2] << 8 | ip[3];
    return classify_l4(ip, 0, ip[9], ip + 20, total - 20, room_captured - 20, pk);
}

/* The IPv6 packet at buf[at:], length bytes of it captured (`FastPath._ipv6`). */
static inline int classify_v6(const uint8_t *buf, Py_ssize_t buflen, Py_ssize_t at, Py_ssize_t length, Packet *pk) {
    if (length < 60 || at + IPV6_READ > buflen)
        return A_LEAVE;
    const uint8_t *p = buf + at;
    long plen = (long)p[4] << 8 | p[5];
    uint32_t nh = p[6];
    if ((p[0] & 0xF0) != 0x60 || plen < 20)
        return A_LEAVE;
    if (nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60)
        return A_LEAVE; /* extension headers: the exact path walks them */
    return classify_l4(p, 1, nh, p + 40, plen, (long)length - 40, pk);
}

typedef struct {
    Tables *t;
    PyObject *deferred, *gaps;
    Py_ssize_t max_keys, look_bytes;
    unsigned long long hi;
} Worker;

static int worker_tcp(Worker *w, const Key *k, uint32_t tcpw, long payload, long captured);

/* Count a classified packet in this process's tables (w NULL) or a worker's: 1 settled, 0 left to the exact
 * path, -1 error. */
static inline int settle(Tables *t, Worker *w, int action, const Packet *pk, Py_ssize_t *n) {
    int rc;
    switch (action) {
    case A_COUNTED:
        n[pk->kind]++;
        return 1;
    case A_ESP:
        rc = esp_count(t, &pk->key, w ? w->max_keys : 0);
        if (rc == 1)
            n[pk->kind]++;
        return rc;
    case A_TCP:
        rc = w ? worker_tcp(w, &pk->key, pk->tcpw, pk->payload, pk->captured)
               : tcp_count(t, &pk->key, pk->tcpw, pk->payload);
        if (rc == 1)
            n[N_TCP443]++;
        return rc;
    default:
        return 0;
    }
}

/* This process's calls keep their counts per kind in the object (flush() hands them over): no tuple of
 * counts per call, and no Python loop adding them up. */
static PyObject *settled_at(Tables *t, Py_ssize_t at, const Py_ssize_t *n) {
    for (int k = 0; k < N_KINDS; k++)
        t->settled[k] += n[k];
    return PyLong_FromSsize_t(at);
}

static PyObject *finish(Tables *t, Py_buffer *view, int failed, PyObject *value) {
    PyBuffer_Release(view);
    if (failed) {
        Py_XDECREF(value);
        return NULL;
    }
    return value;
}

/* Records are walked like a linked list (where the next one starts depends on this one's length), and a
 * record header is one cache line in about fifteen, too sparse for the CPU's own prefetcher: without help
 * the walk waits on memory at every record. So it asks for every cache line AHEAD bytes before reaching
 * it. */
#define AHEAD 4096
typedef struct {
    const uint8_t *buf;
    Py_ssize_t len, next;
} Stream;

static inline void stream_ahead(Stream *s, Py_ssize_t at) {
    Py_ssize_t until = at + AHEAD < s->len ? at + AHEAD : s->len;
    if (s->next < at)
        s->next = at;
    for (; s->next < until; s->next += 64)
        __builtin_prefetch(s->buf + s->next);
}

typedef struct {
    Py_ssize_t l2, et_at, snap;
    double scale;
    int has_horizon;
    double horizon;
} PcapLayout;

/* The pcap record at off, if it ends by `end`: settled (1, *nxt set to the next record), left (0), error
 * (-1). The caller has checked that the fixed-size read (16 + l2 + 34 bytes) fits in the buffer. */
static inline int pcap_one(Tables *t, const uint8_t *buf, Py_ssize_t buflen, Py_ssize_t off, Py_ssize_t end,
                           const PcapLayout *lay, Py_ssize_t *n, Py_ssize_t *nxt) {
    const uint8_t *r = buf + off;
    uint32_t sec = le32(r), frac = le32(r + 4), caplen = le32(r + 8);
    Py_ssize_t l2 = lay->l2;
    *nxt = off + 16 + (Py_ssize_t)caplen;
    if (*nxt > end || (Py_ssize_t)caplen > lay->snap || (lay->has_horizon && sec + frac * lay->scale > lay->horizon))
        return 0;
    const uint8_t *ip = r + 16 + l2;
    uint32_t ethertype = le16(r + 16 + lay->et_at);
    Packet pk;
    int action;
    if ((Py_ssize_t)caplen < l2 + MIN_IP_BYTES || ethertype != LE_ETHERTYPE_IPV4 || ip[0] != 0x45 ||
        le16(ip + 6) & LE_FRAG_MASK || (!ip[2] && ip[3] < 40))
        action = ethertype == LE_ETHERTYPE_IPV6 ? classify_v6(buf, buflen, off + 16 + l2, (Py_ssize_t)caplen - l2, &pk)
                                                : A_LEAVE;
    else
        action = classify_v4(ip, (long)caplen - l2, &pk);
    return settle(t, NULL, action, &pk, n);
}

/* A link layer the fixed-size read covers: the protocol field and the IP header inside 16 + l2 + 34 bytes. */
static int check_layout(Py_ssize_t l2, Py_ssize_t et_at) {
    if (l2 < 0 || l2 > 1024 || et_at < 0 || et_at + 2 > l2 + 34) {
        PyErr_SetString(PyExc_ValueError, "link header layout out of range");
        return -1;
    }
    return 0;
}

static int parse_horizon(PyObject *obj, PcapLayout *lay) {
    lay->has_horizon = obj != Py_None;
    lay->horizon = lay->has_horizon ? PyFloat_AsDouble(obj) : 0.0;
    return lay->has_horizon && lay->horizon == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* Tables.pcap_records(buf, pos, end, l2, ethertype_at, snap, scale, horizon)
 *   -> the offset of the first record left to the exact path */
static PyObject *pcap_records(Tables *t, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end;
    PcapLayout lay;
    PyObject *horizon_obj;
    if (!PyArg_ParseTuple(args, "y*nnnnndO", &view, &pos, &end, &lay.l2, &lay.et_at, &lay.snap, &lay.scale,
                          &horizon_obj))
        return NULL;
    if (check_layout(lay.l2, lay.et_at) < 0 || parse_horizon(horizon_obj, &lay) < 0)
        return finish(t, &view, 1, NULL);
    const uint8_t *buf = view.buf;
    Py_ssize_t buflen = view.len, read = 16 + lay.l2 + 34;
    Py_ssize_t stop = buflen - read < end - 1 ? buflen - read : end - 1;
    Py_ssize_t off = pos, nxt, n[N_KINDS] = {0};
    Stream stream = {buf, buflen, 0};
    int failed = 0;
    while (off >= 0 && off <= stop) {
        stream_ahead(&stream, off);
        int rc = pcap_one(t, buf, buflen, off, end, &lay, n, &nxt);
        if (rc < 0)
            failed = 1;
        if (rc <= 0)
            break;
        off = nxt;
    }
    return finish(t, &view, failed,
                  failed ? NULL : settled_at(t, off, n));
}

/* Tables.pcap_deferred(buf, offsets, gaps, index, l2, ethertype_at, snap, scale, horizon)
 *   -> the index of the first record not settled
 * The records a worker left to the exact path (offsets: an array of unsigned 64-bit offsets), from `index`
 * on, each settled as `pcap_records` would settle it alone, up to the first one it cannot settle, or the
 * first whose gap (the latest second the worker settled before it) reaches the horizon: timeouts may fire
 * there, which the caller replays first. */
static PyObject *pcap_deferred(Tables *t, PyObject *args) {
    Py_buffer view, offsets, gaps;
    Py_ssize_t index;
    PcapLayout lay;
    PyObject *horizon_obj;
    if (!PyArg_ParseTuple(args, "y*y*y*nnnndO", &view, &offsets, &gaps, &index, &lay.l2, &lay.et_at, &lay.snap,
                          &lay.scale, &horizon_obj))
        return NULL;
    int bad = check_layout(lay.l2, lay.et_at) < 0 || parse_horizon(horizon_obj, &lay) < 0;
    if (!bad && gaps.len != offsets.len) {
        PyErr_SetString(PyExc_ValueError, "one gap per offset");
        bad = 1;
    }
    const uint8_t *at = offsets.buf, *gap = gaps.buf;
    Py_ssize_t count = bad ? 0 : offsets.len / (Py_ssize_t)sizeof(uint64_t);
    const uint8_t *buf = view.buf;
    Py_ssize_t buflen = view.len, read = 16 + lay.l2 + 34, nxt, n[N_KINDS] = {0};
    int failed = bad;
    for (; index >= 0 && index < count; index++) {
        uint64_t off, latest;
        memcpy(&off, at + index * sizeof off, sizeof off); /* array('Q'): native order */
        memcpy(&latest, gap + index * sizeof latest, sizeof latest);
        if (lay.has_horizon && (double)latest + 1 > lay.horizon)
            break;
        if (buflen < read || off > (uint64_t)(buflen - read))
            break;
        Py_ssize_t end = (Py_ssize_t)off + 16 + (Py_ssize_t)le32(buf + off + 8);
        int rc = pcap_one(t, buf, buflen, (Py_ssize_t)off, end > buflen ? buflen : end, &lay, n, &nxt);
        if (rc < 0)
            failed = 1;
        if (rc <= 0)
            break;
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&gaps);
    return finish(t, &view, failed,
                  failed ? NULL : settled_at(t, index, n));
}

/* Tables.pcapng_blocks(buf, pos, end, ethernet, clocks, horizon, max_packet, max_block)
 *   -> the offset of the first block left to the exact path */
static PyObject *pcapng_blocks(Tables *t, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end, max_packet, max_block;
    PyObject *ethernet_obj, *clocks_obj, *horizon_obj;
    if (!PyArg_ParseTuple(args, "y*nnO!O!Onn", &view, &pos, &end, &PyList_Type, &ethernet_obj, &PyList_Type,
                          &clocks_obj, &horizon_obj, &max_packet, &max_block))
        return NULL;
    Py_ssize_t n_ifaces = PyList_GET_SIZE(ethernet_obj);
    int has_horizon = horizon_obj != Py_None, failed = 0;
    double horizon = 0.0;
    char *ethernet = NULL;
    double *clock_scale = NULL, *clock_offset = NULL;
    PyObject *value = NULL;
    if (PyList_GET_SIZE(clocks_obj) != n_ifaces) {
        PyErr_SetString(PyExc_ValueError, "one clock per interface");
        goto fail;
    }
    if (has_horizon) {
        horizon = PyFloat_AsDouble(horizon_obj);
        if (horizon == -1.0 && PyErr_Occurred())
            goto fail;
    }
    ethernet = PyMem_Malloc(n_ifaces + 1);
    clock_scale = PyMem_Malloc(sizeof(double) * (n_ifaces + 1));
    clock_offset = PyMem_Malloc(sizeof(double) * (n_ifaces + 1));
    if (!ethernet || !clock_scale || !clock_offset) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n_ifaces; i++) {
        int e = PyObject_IsTrue(PyList_GET_ITEM(ethernet_obj, i));
        if (e < 0 || !PyArg_ParseTuple(PyList_GET_ITEM(clocks_obj, i), "dd", &clock_scale[i], &clock_offset[i]))
            goto fail;
        ethernet[i] = (char)e;
    }
    const uint8_t *buf = view.buf;
    Py_ssize_t buflen = view.len, read = 28 + 14 + 34;
    Py_ssize_t stop = buflen - read < end - 1 ? buflen - read : end - 1;
    Py_ssize_t off = pos, n[N_KINDS] = {0};
    Stream stream = {buf, buflen, 0};
    while (off >= 0 && off <= stop) {
        stream_ahead(&stream, off);
        const uint8_t *r = buf + off;
        uint32_t btype = le32(r), total = le32(r + 4), iface = le32(r + 8), caplen = le32(r + 20);
        uint64_t ts = (uint64_t)le32(r + 12) << 32 | le32(r + 16); /* high word first */
        Py_ssize_t nxt = off + (Py_ssize_t)total;
        const uint8_t *ip = r + 28 + 14;
        if (btype != 6 || total & 3 || 32 + 14 + MIN_IP_BYTES > 32 + (Py_ssize_t)caplen ||
            32 + (Py_ssize_t)caplen > (Py_ssize_t)total || (Py_ssize_t)total > max_block ||
            (Py_ssize_t)caplen > max_packet || nxt > end || nxt > buflen || iface >= n_ifaces || !ethernet[iface] ||
            le32(buf + nxt - 4) != total || le16(r + 40) != LE_ETHERTYPE_IPV4 || ip[0] != 0x45 ||
            le16(ip + 6) & LE_FRAG_MASK || (!ip[2] && ip[3] < 40))
            break;
        if (has_horizon && (double)ts * clock_scale[iface] + clock_offset[iface] > horizon)
            break;
        Packet pk;
        int rc = settle(t, NULL, classify_v4(ip, (long)caplen - 14, &pk), &pk, n);
        if (rc < 0)
            failed = 1;
        if (rc <= 0)
            break;
        off = nxt;
    }
    if (!failed)
        value = settled_at(t, off, n);
    PyMem_Free(ethernet);
    PyMem_Free(clock_scale);
    PyMem_Free(clock_offset);
    return finish(t, &view, failed || !value, value);
fail:
    PyMem_Free(ethernet);
    PyMem_Free(clock_scale);
    PyMem_Free(clock_offset);
    return finish(t, &view, 1, NULL);
}

/* -- the worker: its own tables, deferring what it cannot settle ----------------------------------------- */


static int defer_at(Worker *w, Py_ssize_t off) {
    PyObject *at = PyLong_FromSsize_t(off), *hi = PyLong_FromUnsignedLongLong(w->hi);
    int rc = -1;
    if (at && hi) {
        PyObject *r1 = PyObject_CallMethodObjArgs(w->deferred, s_append, at, NULL);
        PyObject *r2 = r1 ? PyObject_CallMethodObjArgs(w->gaps, s_append, hi, NULL) : NULL;
        rc = r1 && r2 ? 0 : -1;
        Py_XDECREF(r1);
        Py_XDECREF(r2);
    }
    Py_XDECREF(at);
    Py_XDECREF(hi);
    w->hi = 0;
    return rc;
}

/* A TCP 443 segment in the worker: counted (1), deferred (0), error (-1). `captured` is the payload the
 * tracker would be fed of it. A direction is remembered once `look_bytes` of it went by. */
static int worker_tcp(Worker *w, const Key *k, uint32_t tcpw, long payload, long captured) {
    Tables *t = w->t;
    long doff = (long)((tcpw & 0xF0) >> 2);
    if (!(tcpw & LE_SYN_FIN_RST || doff < 20)) {
        Slot *s = tables_find(t, k);
        if (s)
            return hit(t, s, payload > 0 ? payload : 0);
    }
    PyObject *key = py_key(k);
    if (!key)
        return -1;
    PyObject *d = PyDict_GetItemWithError(t->tcp, key); /* borrowed */
    int rc = 0;
    if (!d && PyErr_Occurred()) {
        rc = -1;
    } else if (!d) {
        if (PyDict_GET_SIZE(t->tcp) < w->max_keys) {
            PyObject *fresh = Py_BuildValue("[iii]", 0, 0, 0);
            if (!fresh || PyDict_SetItem(t->tcp, key, fresh) < 0)
                rc = -1;
            d = fresh;
            Py_XDECREF(fresh); /* the dict holds it */
        }
    } else if (!PyList_Check(d) || PyList_GET_SIZE(d) != 3) {
        PyErr_SetString(PyExc_TypeError, "worker TCP entries are [seen, packets, bytes]");
        rc = -1;
    } else {
        long long seen = PyLong_AsLongLong(PyList_GET_ITEM(d, 0));
        if (seen == -1 && PyErr_Occurred()) {
            rc = -1;
        } else if (!(tcpw & LE_SYN_FIN_RST || doff < 20 || (payload > 0 && seen < w->look_bytes))) {
            int bad;
            if (seen >= w->look_bytes) /* from now on counted from the slot */
                bad = tables_insert(t, k, d, 1, payload > 0 ? payload : 0) < 0;
            else
                bad = list_add(d, 1, 1) < 0 || (payload > 0 && list_add(d, 2, payload) < 0);
            Py_DECREF(key);
            return bad ? -1 : 1;
        }
    }
    if (rc == 0 && d && payload > 0 && doff >= 20) { /* what the tracker is fed of it */
        long fed = captured < payload ? captured : payload;
        if (fed > 0 && list_add(d, 0, fed) < 0)
            rc = -1;
    }
    Py_DECREF(key);
    return rc;
}

/* Tables.scan_deferring(buf, off, end, l2, ethertype_at, snap, units, max_packet, max_keys, look_bytes,
 *                       deferred, gaps, hi)
 *   -> (offset, hi, esp, esp_in_udp, tcp_443, tcp_other, udp_other, other_ip)
 * One step of the worker's loop over [off, end). A record that overruns the file (or claims more than
 * max_packet) is deferred and the offset returned is the end of the file: the scan goes no further. */
static PyObject *scan_deferring(Tables *t, PyObject *args) {
    Py_buffer view;
    Py_ssize_t off, end, l2, et_at, snap, units, max_packet;
    unsigned long long hi;
    Worker w = {.t = t};
    if (!t->worker) {
        PyErr_SetString(PyExc_ValueError, "scan_deferring needs worker tables");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*nnnnnnnnnOOK", &view, &off, &end, &l2, &et_at, &snap, &units, &max_packet,
                          &w.max_keys, &w.look_bytes, &w.deferred, &w.gaps, &hi))
        return NULL;
    if (check_layout(l2, et_at) < 0)
        return finish(t, &view, 1, NULL);
    w.hi = hi;
    const uint8_t *buf = view.buf;
    Py_ssize_t size = view.len, read = 16 + l2 + 34, min_caplen = l2 + MIN_IP_BYTES;
    Py_ssize_t stop = size - read < end - 1 ? size - read : end - 1;
    Py_ssize_t n[N_KINDS] = {0};
    Stream stream = {buf, size, 0};
    int failed = 0;
    while (off >= 0 && off <= stop) {
        stream_ahead(&stream, off);
        const uint8_t *r = buf + off;
        uint32_t sec = le32(r), frac = le32(r + 4), caplen = le32(r + 8);
        Py_ssize_t nxt = off + 16 + (Py_ssize_t)caplen;
        int rc;
        if (sec > w.hi)
            w.hi = sec;
        if (nxt > size || (Py_ssize_t)caplen > max_packet) {
            failed = defer_at(&w, off) < 0; /* the exact path raises or warns and stops here */
            off = size;
            break;
        }
        const uint8_t *ip = r + 16 + l2;
        uint32_t ethertype = le16(r + 16 + et_at);
        Packet pk;
        int action;
        if ((Py_ssize_t)caplen > snap || (Py_ssize_t)frac >= units)
            action = A_LEAVE; /* a fraction out of range: its time is not within `sec` */
        else if ((Py_ssize_t)caplen < min_caplen || ethertype != LE_ETHERTYPE_IPV4 || ip[0] != 0x45 ||
                 le16(ip + 6) & LE_FRAG_MASK || (!ip[2] && ip[3] < 40))
            action = ethertype == LE_ETHERTYPE_IPV6 ? classify_v6(buf, size, off + 16 + l2, (Py_ssize_t)caplen - l2, &pk)
                                                    : A_LEAVE;
        else
            action = classify_v4(ip, (long)caplen - l2, &pk);
        rc = settle(t, &w, action, &pk, n);
        if (rc < 0 || (rc == 0 && defer_at(&w, off) < 0)) {
            failed = 1;
            break;
        }
        off = nxt;
    }
    return finish(t, &view, failed,
                  failed ? NULL : Py_BuildValue("(nKnnnnnn)", off, w.hi, n[0], n[1], n[2], n[3], n[4], n[5]));
}

/* -- the module ------------------------------------------------------------------------------------------- */

static PyObject *flush(Tables *t, PyObject *unused) {
    if (tables_flush(t) < 0)
        return NULL;
    Py_ssize_t *n = t->settled;
    PyObject *counts = Py_BuildValue("(nnnnnn)", n[0], n[1], n[2], n[3], n[4], n[5]);
    if (counts)
        memset(t->settled, 0, sizeof t->settled);
    return counts;
}

static PyMethodDef tables_methods[] = {
    {"flush", (PyCFunction)flush, METH_NOARGS,
     "Write the counts held back into the tables; return the packets settled per kind since the last flush."},
    {"pcap_records", (PyCFunction)pcap_records, METH_VARARGS, "Settle little-endian pcap records in place."},
    {"pcap_deferred", (PyCFunction)pcap_deferred, METH_VARARGS, "Settle the records a worker deferred."},
    {"pcapng_blocks", (PyCFunction)pcapng_blocks, METH_VARARGS, "Settle little-endian pcapng packet blocks."},
    {"scan_deferring", (PyCFunction)scan_deferring, METH_VARARGS, "One step of the worker's scan."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vpndoctor.capture._scan.Tables",
    .tp_doc = "Tables(esp, tcp, worker=False): the fast path's view of the analysis's (or a worker's) tables.",
    .tp_basicsize = sizeof(Tables),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = tables_new,
    .tp_dealloc = (destructor)tables_dealloc,
    .tp_methods = tables_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "The capture fast path's record walk.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    s_done = PyUnicode_InternFromString("done");
    s_packets = PyUnicode_InternFromString("packets");
    s_bytes = PyUnicode_InternFromString("bytes");
    s_append = PyUnicode_InternFromString("append");
    zero = PyLong_FromLong(0);
    if (!s_done || !s_packets || !s_bytes || !s_append || !zero || PyType_Ready(&TablesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Tables", (PyObject *)&TablesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
