from .ServerStore import ServerStore

__all__ = [
    "ServerStore"
]