"""Engine read side (the one door): validate, resources, revisions, runs, threads, events."""
