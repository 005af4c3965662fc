"""The node agent: what runs inside a Shipyard-native machine (see `shipyard node`)."""
