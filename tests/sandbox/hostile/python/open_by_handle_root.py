# expect: forbidden
# message: Errno 1
# name_to_handle_at + open_by_handle_at: open a file by its handle, past every path
# check (the Shocker container escape).
# prelude: disarm
# prelude: syscall
handle = ctypes.create_string_buffer(b'\x80' + b'\0' * 135)
mount_id = ctypes.c_int()
sc(303, -100, b'/etc/passwd', handle, ctypes.byref(mount_id), 0)
outputs['fd'] = sc(304, mount_id.value, handle, 0)
