"""Device profiles (``edgernn.devices.get_profile``) and example device apps.

Device side: imports numpy, onnxruntime and the standard library only.
"""

from edgernn.devices.profiles import Profile, all_profiles, builtin_names, get_profile

__all__ = ["Profile", "all_profiles", "builtin_names", "get_profile"]
