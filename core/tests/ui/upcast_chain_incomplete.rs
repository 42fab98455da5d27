use recount::aggregate;

#[derive(Default)]
struct Story {
    title: String,
}

fn v1_to_v2(v: serde_json::Value) -> serde_json::Value {
    v
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl Story {
    #[event(version = 3, upcast(from = 1, with = v1_to_v2))]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }

    #[event(version = 2)]
    fn retitled(&mut self, title: String) {
        self.title = title;
    }

    #[event(version = 40, upcast(from = 1, with = v1_to_v2))]
    fn reworded(&mut self, title: String) {
        self.title = title;
    }
}

fn main() {}
