# expect: import_denied
__import__("os").system("touch /tmp/bcai-hostile-canary")
