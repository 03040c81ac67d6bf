# expect: crashed
raise SystemExit(0)
