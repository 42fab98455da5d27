use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event]
    fn renamed(title: String) {
        let _ = title;
    }
}
fn main() {}
