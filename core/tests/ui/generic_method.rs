use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed<T: Into<String>>(&mut self, title: T) {
        self.title = title.into();
    }
}
fn main() {}
