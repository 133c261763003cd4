from s3csi.cli import main

raise SystemExit(main())
