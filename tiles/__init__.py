"""Vector tiles (MVT) and TileJSON over the layer registry."""
