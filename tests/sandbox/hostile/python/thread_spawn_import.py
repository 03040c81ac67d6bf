# expect: import_denied
import threading
threading.Thread(target=lambda: None).start()
