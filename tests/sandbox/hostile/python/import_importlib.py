# expect: import_denied
import importlib
importlib.import_module("os")
