use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed(&mut self, (title, _subtitle): (String, String)) {
        self.title = title;
    }
}
fn main() {}
