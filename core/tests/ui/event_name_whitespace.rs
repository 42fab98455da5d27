use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event(name = "story renamed")]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}

fn main() {}
