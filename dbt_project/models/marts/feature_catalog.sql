{#- How people call each profiled feature, in each report language: the declaration's
    labels, units and words for high and low values, as a table the report reads. An
    ordered category gives two rows: its levels and its rank (`<name>_level`). -#}
{%- set rows = [] -%}
{%- for column in mart_columns() | rejectattr('role', 'equalto', 'label') -%}
    {%- do rows.append({'feature': column.name, 'data_type': column.type, 'role': 'profile' if column.ordered else column.role,
        'column': column}) -%}
    {%- if column.ordered -%}
        {%- do rows.append({'feature': column.name ~ '_level', 'data_type': 'integer', 'role': 'ordinal', 'column': column}) -%}
    {%- endif -%}
{%- endfor -%}
{%- set text = dbt.type_string() -%}

with

declared as (

    {%- for row in rows %}
    {%- set column = row.column %}
    select
        {{ sql_string(row.feature) }} as feature,
        {{ loop.index }} as position,
        {{ sql_string(row.data_type) }} as data_type,
        {{ sql_string(row.role) }} as role,
        {{ 'true' if column.ordered else 'false' }} as is_ordered,
        {{ 'true' if column.skewed else 'false' }} as is_skewed,
        {{ 'true' if column.derive else 'false' }} as is_derived,
        {% for key in ['column', 'label_en', 'label_fr', 'unit_en', 'unit_fr', 'high_en', 'high_fr', 'low_en', 'low_fr'] -%}
        {{ sql_string(column[key]) if column[key] is not none else 'cast(null as ' ~ text ~ ')' }}
            as {{ 'source_column' if key == 'column' else key }}{{ "," if not loop.last }}
        {% endfor %}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    select
        cast(feature as {{ text }}) as feature,
        cast(position as integer) as position,
        cast(data_type as {{ text }}) as data_type,
        cast(role as {{ text }}) as role,
        cast(is_ordered as boolean) as is_ordered,
        cast(is_skewed as boolean) as is_skewed,
        cast(is_derived as boolean) as is_derived,
        cast(source_column as {{ text }}) as source_column,
        cast(label_en as {{ text }}) as label_en,
        cast(label_fr as {{ text }}) as label_fr,
        cast(unit_en as {{ text }}) as unit_en,
        cast(unit_fr as {{ text }}) as unit_fr,
        cast(high_en as {{ text }}) as high_en,
        cast(high_fr as {{ text }}) as high_fr,
        cast(low_en as {{ text }}) as low_en,
        cast(low_fr as {{ text }}) as low_fr

    from declared

)

select * from final
