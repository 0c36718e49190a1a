from facemark.cli import main

raise SystemExit(main())
