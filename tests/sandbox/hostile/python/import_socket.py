# expect: import_denied
import socket
