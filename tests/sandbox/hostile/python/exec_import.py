# expect: import_denied
exec("import os", {})
