"""The process infrastructure provider: each machine a supervised local process tree."""
