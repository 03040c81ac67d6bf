# expect: time_limit
# Catching every exception does not help against a kill.
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
