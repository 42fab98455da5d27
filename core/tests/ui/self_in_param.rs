use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn merged(&mut self, other: Box<Self>) {
        self.title = other.title;
    }
}

fn main() {}
