"""What a person looks at: `render` (the video with its results drawn, `render_people` for
several faces, `rendered_video` the shared video loop, `painter` the drawing) and `plot` (the
results CSV as a figure)."""
