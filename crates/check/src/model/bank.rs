//! A bank: accounts `0..n` with integer balances, `transfer` between two of them and `read`,
//! which returns every balance at once. Transfers conserve the total, so a read whose balances
//! do not add up can never be placed. A transfer that would overdraw its source cannot succeed
//! (Jepsen's bank workload refuses negative balances).

use super::{bad_op, known_result, unknown_f, Model};
use crate::error::Error;
use crate::operation::Operation;
use crate::value::Value;

/// A bank operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankOp {
    /// `transfer {"from": a, "to": b, "amount": n}` (or `[a, b, n]`).
    Transfer {
        /// The account debited.
        from: usize,
        /// The account credited.
        to: usize,
        /// How much moved (not negative).
        amount: i64,
    },
    /// `read`: returned these balances, account `i` at position `i` (`None`: not known).
    Read(Option<Vec<i64>>),
}

/// A bank with fixed accounts and their initial balances.
#[derive(Clone, Debug)]
pub struct Bank {
    initial: Vec<i64>,
}

impl Bank {
    /// A bank whose account `i` starts with `balances[i]`.
    pub fn new(balances: Vec<i64>) -> Result<Bank, Error> {
        if balances.is_empty() {
            return Err(Error::Model("a bank needs at least one account".into()));
        }
        Ok(Bank { initial: balances })
    }

    /// `accounts` accounts each holding `balance`: the CLI's `--accounts N --balance B`.
    pub fn uniform(accounts: usize, balance: i64) -> Result<Bank, Error> {
        Bank::new(vec![balance; accounts])
    }

    fn account(&self, op: &Operation, v: &Value, what: &str) -> Result<usize, Error> {
        v.as_int()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n < self.initial.len())
            .ok_or_else(|| {
                bad_op(op, format!("{what} {v} is not an account (0..{})", self.initial.len()))
            })
    }

    fn transfer(&self, op: &Operation) -> Result<BankOp, Error> {
        let (from, to, amount) = match &op.value {
            Value::Map(m) => (m.get("from"), m.get("to"), m.get("amount")),
            Value::List(items) if items.len() == 3 => (items.first(), items.get(1), items.get(2)),
            other => {
                return Err(bad_op(
                    op,
                    format!("expects {{\"from\": a, \"to\": b, \"amount\": n}}, got {other}"),
                ))
            }
        };
        let missing = || bad_op(op, "needs from, to and amount");
        let from = self.account(op, from.ok_or_else(missing)?, "from")?;
        let to = self.account(op, to.ok_or_else(missing)?, "to")?;
        let amount = amount
            .ok_or_else(missing)?
            .as_int()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_op(op, "the amount must be a non-negative integer"))?;
        Ok(BankOp::Transfer { from, to, amount })
    }

    fn read(&self, op: &Operation) -> Result<BankOp, Error> {
        let Some(result) = known_result(op) else {
            return Ok(BankOp::Read(None));
        };
        let balances: Option<Vec<i64>> = match result {
            Value::List(items) => items.iter().map(Value::as_int).collect(),
            // {"0": 10, "1": 20}: every account must appear exactly once.
            Value::Map(m) => (0..self.initial.len())
                .map(|i| m.get(&i.to_string()).and_then(Value::as_int))
                .collect::<Option<Vec<i64>>>()
                .filter(|_| m.len() == self.initial.len()),
            _ => None,
        };
        match balances {
            // A list of the wrong length is a wrong answer, not bad input: it never matches.
            Some(b) => Ok(BankOp::Read(Some(b))),
            _ => Err(bad_op(
                op,
                format!(
                    "expects the balances (a list of integers, or a map from every account to \
                     its balance) as the result, got {result}"
                ),
            )),
        }
    }
}

impl Model for Bank {
    type State = Vec<i64>;
    type Op = BankOp;

    fn name(&self) -> &'static str {
        "bank"
    }

    fn init(&self) -> Vec<i64> {
        self.initial.clone()
    }

    fn prepare(&self, op: &Operation) -> Result<BankOp, Error> {
        match op.f.as_str() {
            "transfer" => self.transfer(op),
            "read" => self.read(op),
            _ => Err(unknown_f(op, self.name(), &["transfer", "read"])),
        }
    }

    fn is_read_only(&self, op: &BankOp) -> bool {
        matches!(op, BankOp::Read(_))
    }

    fn weight(&self, state: &Vec<i64>) -> usize {
        1 + state.len()
    }

    fn step(&self, state: &Vec<i64>, op: &BankOp) -> Option<Vec<i64>> {
        match op {
            BankOp::Transfer { from, to, amount } => {
                let mut next = state.clone();
                next[*from] = next[*from].checked_sub(*amount).filter(|b| *b >= 0)?;
                next[*to] = next[*to].checked_add(*amount)?;
                Some(next)
            }
            BankOp::Read(None) => Some(state.clone()),
            BankOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
        }
    }
}
