/// An optional value kept out of line: empty, the field costs a word rather than its
/// type's size. For the large, often empty fields of what stays in memory for as long as
/// a stream is open.
@propertyWrapper
enum OutOfLine<Value> {
    case none
    indirect case some(Value)

    init(wrappedValue: Value?) {
        self = wrappedValue.map { .some($0) } ?? .none
    }

    var wrappedValue: Value? {
        get {
            if case .some(let value) = self { value } else { nil }
        }
        set {
            self = newValue.map { .some($0) } ?? .none
        }
    }
}
