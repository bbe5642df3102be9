"""The Windows side of vpndoctor: what a Windows client or server leaves behind, read without a Windows host.

- `events`: exported event logs (.evtx, `wevtutil` XML, Event Viewer CSV) -> RasClient attempts, NPS
  decisions, IKEEXT/SSTP errors (the `vpndoctor events` report);
- `profile`: an Always On VPN ProfileXML -> gateways, protocol, auth methods and the IKE CryptographySuite;
- `errorcodes`: the RAS/IKE/Win32/certificate/NPS error-code catalogue;
- `addresses`: decoding the IPv6 addresses DirectAccess produces (ISATAP, 6to4, Teredo, NAT64...);
- `ipconfig`: ISATAP adapters and their manage-out prefixes from `ipconfig` / `Get-NetIPAddress` output.

Nothing here touches the network, and importing this package imports none of its modules.
"""
