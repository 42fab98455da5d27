use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error, snapshot_every = 0, colour = "red")]
impl Story {
    #[event(version = 0)]
    fn renamed(&self, title: String) -> bool {
        let _ = title;
        true
    }

    #[event(name = "story.renamed")]
    async fn retitled(&mut self, (title, _): (String, u8)) {
        self.title = title;
    }
}
fn main() {}
