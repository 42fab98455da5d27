use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

trait Titled {
    fn renamed(&mut self, title: String);
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Titled for Story {
    #[event]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}
fn main() {}
