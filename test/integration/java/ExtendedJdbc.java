// pgjdbc (default preferQueryMode=extended) through Gatehouse: run by extended-protocol.test.ts
// as `java -cp postgresql.jar ExtendedJdbc.java <port> <user> <password>`; prints key=value lines.
import java.sql.*;

public class ExtendedJdbc {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/warehouse?sslmode=disable";
    try (Connection c = DriverManager.getConnection(url, args[1], args[2])) {
      System.out.println("version=" + c.getMetaData().getDatabaseProductVersion());
      // Seven runs: past pgjdbc's prepareThreshold (5), so later runs bind a named server statement.
      for (int i = 0; i < 7; i++) {
        try (PreparedStatement ps = c.prepareStatement("SELECT region, count(*) AS n FROM orders WHERE amount > ? GROUP BY 1 ORDER BY 1")) {
          ps.setInt(1, 10);
          try (ResultSet rs = ps.executeQuery()) {
            StringBuilder sb = new StringBuilder();
            while (rs.next()) sb.append(rs.getString(1)).append(':').append(rs.getLong(2)).append(' ');
            System.out.println("regions=" + sb.toString().trim());
          }
        }
      }
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT * FROM employees")) {
        System.out.println("employees=allowed");
      } catch (SQLException e) {
        System.out.println("employees=" + e.getSQLState());
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM orders WHERE id > ?")) {
        ps.setInt(1, 0);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          System.out.println("after=" + rs.getLong(1));
        }
      }
    }
  }
}
