//! StoryChain command line (first slice comes with the StoryChain issue).

fn main() {
    println!("storychain: not built yet");
}
