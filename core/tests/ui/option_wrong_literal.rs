use recount::aggregate;

#[derive(Default)]
struct Account {
    balance: u64,
}

#[aggregate(category = account, error = std::fmt::Error)]
impl Account {
    #[event]
    fn deposited(&mut self, amount: u64) {
        self.balance += amount;
    }
}

fn main() {}
