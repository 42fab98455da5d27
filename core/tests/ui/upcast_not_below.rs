use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

fn v2_to_v3(v: serde_json::Value) -> serde_json::Value {
    v
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event(version = 2, upcast(from = 2, with = v2_to_v3))]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}
fn main() {}
