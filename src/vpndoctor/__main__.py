from vpndoctor.cli import main

main()
