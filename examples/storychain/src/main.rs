//! StoryChain command line.

fn main() {}
