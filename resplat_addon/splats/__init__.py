"""Splat point clouds: pure schema/transform code (:mod:`.schema`, :mod:`.transform`, no bpy)
apart from the Blender glue (:mod:`.pointcloud`)."""
