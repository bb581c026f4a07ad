"""Live vacancy: staff reports and their validation, the fan-out hub for open maps, replay of a snapshot."""
