"""Robot diffusion policies on an image-based MuJoCo task.

A Diffusion Policy baseline and a Video2Act-style dual system (slow video-diffusion features, fast DiT action head).
"""
