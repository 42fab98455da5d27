use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed(&mut self, title: String) -> bool {
        self.title = title;
        true
    }
}
fn main() {}
