"""Live demos of the seed's pictures: real worker processes running the election and registry
recipes, a driver that starts and kills them, and a view of who leads and who watches whom."""
