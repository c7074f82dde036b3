"""Front end: Python source of a kernel -> Tile IR (``codegen.build_tile_ir``)."""
