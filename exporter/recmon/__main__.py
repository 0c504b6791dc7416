from recmon.cli import main

raise SystemExit(main())
