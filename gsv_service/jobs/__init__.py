"""Child-process entry points for built-in work (`python -m gsv_service.jobs.<name>`).

Built-in steps run their heavy work in a child process of the service's interpreter, so that a
cancel kills it like any engine process and the API never waits on the GIL.
"""
