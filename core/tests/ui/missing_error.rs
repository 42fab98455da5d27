use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story")]
impl Story {
    #[event]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}
fn main() {}
