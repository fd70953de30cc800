"""Robot diffusion policies: a Diffusion Policy baseline and a Video2Act-style dual system (slow video-diffusion
features, fast DiT action head) on an image-based MuJoCo task."""
