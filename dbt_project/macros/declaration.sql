{#- The table declaration (dbt_project/declarations/*.yml, docs/declaration.md), as
    `python -m segmentation declare` compiled it into the `meta` of the raw.customers
    source. Every model that depends on the user's columns loops over it. -#}
{% macro declaration() -%}
    {%- if not execute -%}
        {{ return({'columns': [], 'derived': [], 'latest_first': [], 'date_columns': [], 'as_of': none,
            'orders': none, 'behaviour': [], 'customer_table': true}) }}
    {%- endif -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.source_name == 'raw' and node.name == 'customers' -%}
            {%- set meta = node.config.meta if node.config and node.config.meta else node.meta -%}
            {%- if meta and meta.declaration -%}
                {{ return(meta.declaration) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("no declaration in the raw.customers source: run `python -m segmentation declare` (make all does)") }}
{%- endmacro %}

{#- Columns of the file, without the identifier. -#}
{% macro declared_attributes() -%}
    {{ return(declaration().columns | rejectattr('type', 'equalto', 'identifier') | list) }}
{%- endmacro %}

{#- Declared and derived columns kept after validation (dates too: derivations and
    the deduplication order may use them). -#}
{% macro kept_columns() -%}
    {%- set kept = [] -%}
    {%- for column in declared_attributes() + declaration().derived -%}
        {%- if column.in_mart or column.type == 'date' -%}{%- do kept.append(column) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(kept) }}
{%- endmacro %}

{#- Columns of the customer table that reach customer_features (identifier aside). -#}
{% macro attribute_columns() -%}
    {{ return(kept_columns() | selectattr('in_mart') | list) }}
{%- endmacro %}

{#- Columns that reach customer_features: the attributes, then the behaviour computed
    from the order lines (recency, frequency, monetary…; none without order lines). -#}
{% macro mart_columns() -%}
    {{ return(attribute_columns() + (declaration().behaviour or []) | selectattr('in_mart') | list) }}
{%- endmacro %}

{#- The warehouse type of a declared column. -#}
{% macro column_type(column) -%}
    {%- if column.type in ('category', 'text', 'identifier') -%}{{ dbt.type_string() }}
    {%- elif column.type == 'integer' -%}bigint
    {%- elif column.type == 'number' -%}double
    {%- elif column.type == 'boolean' -%}boolean
    {%- elif column.type == 'date' -%}date
    {%- endif -%}
{%- endmacro %}

{#- The typed value of a declared column from its cleaned text; NULL when missing or
    not readable (the validation model tells the two apart through `<name>__text`). -#}
{% macro typed_value(column, text) -%}
    {%- if column.type in ('number', 'integer') -%}
        {{ parse_number(text) }}
    {%- elif column.type == 'boolean' -%}
        case
            when lower({{ text }}) in ({{ sql_list(column.true_keys) }}) then true
            when lower({{ text }}) in ({{ sql_list(column.false_keys) }}) then false
        end
    {%- elif column.type == 'date' -%}
        coalesce(
            {%- for format in column.formats %}
            {{ parse_date(text, format) }}{{ "," if not loop.last }}
            {%- endfor %}
        )
    {%- elif column.type == 'category' and column.levels -%}
        case lower({{ text }})
            {%- for level in column.levels %}
            {%- for key in level['keys'] %}
            when {{ sql_string(key) }} then {{ sql_string(level.value) }}
            {%- endfor %}
            {%- endfor %}
        end
    {%- else -%}
        {{ text }}
    {%- endif -%}
{%- endmacro %}

{#- A derived column from the typed (not yet imputed) values of the columns it uses. -#}
{% macro derived_value(column, as_of) -%}
    {%- set used = column.derive.columns -%}
    {%- if column.derive.kind == 'years_since' -%}
        year({{ as_of }}) - {{ used[0] }}
    {%- elif column.derive.kind == 'days_since' -%}
        {{ dbt.datediff(used[0], as_of, 'day') }}
    {%- elif column.derive.kind == 'sum' -%}
        case when coalesce({{ used | join(', ') }}) is not null then
            {% for name in used %}coalesce({{ name }}, 0){{ " + " if not loop.last }}{% endfor %}
        end
    {%- elif column.derive.kind == 'ratio' -%}
        cast({{ used[0] }} as double) / nullif({{ used[1] }}, 0)
    {%- elif column.derive.kind == 'difference' -%}
        {{ used[0] }} - {{ used[1] }}
    {%- endif -%}
{%- endmacro %}

{#- "Outside the declared range" as SQL (NULL-safe: a missing value breaks no range). -#}
{% macro out_of_range(column, expression=none) -%}
    {%- set value = expression or column.name -%}
    {%- set tests = [] -%}
    {%- if column.range_min is not none -%}{%- do tests.append(value ~ ' < ' ~ column.range_min) -%}{%- endif -%}
    {%- if column.range_max is not none -%}{%- do tests.append(value ~ ' > ' ~ column.range_max) -%}{%- endif -%}
    {{ tests | join(' or ') if tests else 'false' }}
{%- endmacro %}

{#- One quarantine rule per declared check, in declaration order: (reason, rule, column, SQL test). -#}
{% macro quarantine_rules() -%}
    {%- set rules = [] -%}
    {%- set attributes = declared_attributes() -%}
    {%- for column in attributes -%}
        {%- set readable = column.type in ('number', 'integer', 'boolean', 'date') -%}
        {%- if readable or (column.type == 'category' and column.levels) -%}
            {%- set rule = 'unparseable' if readable else 'unknown_level' -%}
            {%- set reason = ('unparseable_' ~ column.name) if readable else ('unknown_' ~ column.name) -%}
            {%- do rules.append({'reason': reason, 'rule': rule, 'column': column, 'source': column,
                'test': column.name ~ '__text is not null and ' ~ column.name ~ ' is null'}) -%}
        {%- endif -%}
        {%- if column.range_min is not none or column.range_max is not none -%}
            {%- do rules.append({'reason': column.name ~ '_out_of_range', 'rule': 'out_of_range', 'column': column,
                'source': column, 'test': out_of_range(column)}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for column in declaration().derived -%}
        {#- a derived value is shown through the first column it is computed from -#}
        {%- set source = attributes | selectattr('name', 'equalto', column.derive.columns[0]) | first -%}
        {%- if column.range_min is not none or column.range_max is not none -%}
            {%- do rules.append({'reason': column.name ~ '_out_of_range', 'rule': 'out_of_range', 'column': column,
                'source': source, 'test': out_of_range(column)}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(rules) }}
{%- endmacro %}

{#- The value an imputation falls back to, as a SQL literal of the column's type. -#}
{% macro sql_constant(value, column) -%}
    {%- if value is none -%}cast(null as {{ column_type(column) }})
    {%- elif value is sameas true -%}true
    {%- elif value is sameas false -%}false
    {%- elif value is string -%}{{ sql_string(value) }}
    {%- else -%}cast({{ value }} as {{ column_type(column) }})
    {%- endif -%}
{%- endmacro %}

{% macro sql_list(values) -%}
    {%- for value in values -%}{{ sql_string(value) }}{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}
