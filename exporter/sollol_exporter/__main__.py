from sollol_exporter.cli import main

raise SystemExit(main())
