import WatchQueueCore

extension Timestamp {
    /// The instant in UTC as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` (ISO 8601, microseconds):
    /// fixed width, so lines sort by time as plain text.
    public var iso8601: String {
        let (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        // Floor division: instants before 1970 belong to the day before.
        let day = secondOfDay < 0 ? days - 1 : days
        let second = secondOfDay < 0 ? secondOfDay + 86_400 : secondOfDay
        let (year, month, dayOfMonth) = civilDate(daysSinceEpoch: day)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(dayOfMonth, 2))T"
            + "\(pad(second / 3600, 2)):\(pad(second / 60 % 60, 2)):\(pad(second % 60, 2))"
            + ".\(pad(Int64(nanoseconds / 1000), 6))Z"
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by Howard Hinnant's
/// `civil_from_days`: exact for any day, no tables, no libc time zone state.
func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = daysSinceEpoch + 719_468  // Days since 0000-03-01.
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 is March.
    let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
    let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

/// `value` in decimal, zero-padded on the left to `width` digits.
func pad(_ value: Int64, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
