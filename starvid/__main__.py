from starvid.cli import main

raise SystemExit(main())
