"""Bootstrap providers: they turn a Machine's bootstrap config into the data its
infrastructure boots with."""
