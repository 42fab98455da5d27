use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

fn v1_to_v2(v: serde_json::Value) -> String {
    v.to_string()
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event(version = 2, upcast(from = 1, with = v1_to_v2))]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}
fn main() {}
