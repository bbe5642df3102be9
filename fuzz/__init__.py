"""Coverage-guided fuzzing of vpndoctor's parsers (atheris/libFuzzer): one harness per parser in
`fuzz.harnesses`, seed corpora in `fuzz/corpus/<harness>/`, every crash found kept in
`fuzz/crashes/<harness>/`. See fuzz/README.md."""
