"""The world vocabulary: scene state and objects, world constants, gripper geometry, symbolic relations, goal
predicates, the task format, errors, observation keys, the proprioception layout and seed ranges.

Pure on purpose: it imports numpy and the standard library only (no pybullet, gymnasium, torch, open3d) and
nothing else of the project, so every other layer can depend on it.
"""
