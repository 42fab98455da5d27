use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    fn title(&self) -> &str {
        &self.title
    }
}
fn main() {}
