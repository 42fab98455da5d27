use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

macro_rules! event_methods {
    () => {};
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }

    event_methods!();
}
fn main() {}
